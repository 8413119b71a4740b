"""The read stage: a referral file (or a review tracker) in, rows with the file's own cell references out.

`referrals.read_referrals(path) -> Sheet` is the stage's entry; the modules below it, lowest first:

* `limits` - every bound on reading an untrusted file (docs/limits.md states them)
* `damage` - `DamagedWorkbook` and `damage_reason`: a damaged file told in a few words
* `celltext` - cell text made safe to carry on (Excel's _xHHHH_ escapes, lone surrogates)
* `zipcheck` - a zip checked before any part is read (parts, names, unpacked size)
* `sniff` - what kind of file this is, from its content (`sniff`, `SPREADSHEET_SUFFIXES`)
* `xmlparts` - zip parts as safe XML streams (no DOCTYPE; a worksheet's empty rows dropped as bytes)
* `cells` - one .xlsx cell as a value
* `notes` - what reading a sheet noticed besides values, and the warnings it becomes
* `xlsx` - the streaming .xlsx reader (`xlsx_sheets`; `workbook_sheets`, `custom_property` for the tracker)
* `calamine` - .xls, .xlsb and .ods read by python-calamine in a bounded child process
* `delimited` - CSV: its encoding, and its rows as a bounded stream
* `headings` - finding a heading row and the sheet that has one (`HeadingFinder`), for any table
* `referrals` - `read_referrals`, `Sheet`, `Column`, `InputRow`
"""
