"""The email body's template, ``email/plan-email.txt``: where it is found, loading it, and checking it.

An office's own templates folder comes first (``<templates_dir>/email/plan-email.txt``), else the shipped
one. The template is sandboxed and strict: a name the message data does not provide (`EMAIL_CONTEXT_KEYS`)
is an error, never an empty gap in a letter to a school.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from pipeline.core.errors import TemplateError

EMAIL_TEMPLATE = "plan-email.txt"
#: the variables the email template is given (for `check-templates`)
EMAIL_CONTEXT_KEYS = frozenset({
    "referral_id", "receiving_school", "receiving_school_contact", "inclusions_officer",
    "inclusions_officer_email", "letter_kind", "run_id", "as_of", "plan_reviewed", "plan_review_date", "update",
})


def _shipped_templates() -> Path | None:
    from pipeline.core.resources import shipped

    found = shipped(f"templates/email/{EMAIL_TEMPLATE}")  # the one lookup: a checkout first, then the package
    return found.parent.parent if found else None


@lru_cache(maxsize=8)
def _environment(templates_dir: str | None) -> SandboxedEnvironment:
    loaders = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(str(Path(templates_dir) / "email")))
    shipped = _shipped_templates()
    if shipped is not None:
        loaders.append(jinja2.FileSystemLoader(str(shipped / "email")))
    return SandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                                autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                                lstrip_blocks=True)


def check_email_template(templates_dir: str | Path | None = None) -> list[str]:
    """`reintegrate check-templates` for the email body: a syntax error, or each name it uses that the message
    data does not provide (`EMAIL_CONTEXT_KEYS`), one sentence each."""
    try:
        template = load_email_template(templates_dir)
    except TemplateError as exc:
        return [str(exc)]
    env = template.environment
    source = env.loader.get_source(env, EMAIL_TEMPLATE)[0]
    unknown = sorted(jinja2.meta.find_undeclared_variables(env.parse(source)) - EMAIL_CONTEXT_KEYS)
    return [f"email/{EMAIL_TEMPLATE}: placeholder '{name}' cannot be filled (an email has only: "
            f"{', '.join(sorted(EMAIL_CONTEXT_KEYS))})" for name in unknown]


def load_email_template(templates_dir: str | Path | None = None) -> jinja2.Template:
    """The body template: ``<templates_dir>/email/plan-email.txt`` if present, else the shipped one."""
    try:
        return _environment(str(templates_dir) if templates_dir else None).get_template(EMAIL_TEMPLATE)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"email/{EMAIL_TEMPLATE}: the email template was not found in "
                            f"{templates_dir or 'the shipped templates'}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"email/{EMAIL_TEMPLATE}: template syntax error on line {exc.lineno}: "
                            f"{exc.message}") from None
