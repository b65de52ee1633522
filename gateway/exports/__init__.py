"""The documents the alliance office hands in, as XLSX workbooks laid out like the seed forms:
the semi-annual work report, seed 003 Annex 1 (审核评估表) and seed 001 Annex 4 (the assessment
table). One module serves the downloads (route and authentication), one builds each workbook."""
