"""Reports and exports: the figures (``data``), their charts (``charts``), PDF rendering (``pdf``),
streaming CSV/XLSX with formula neutralisation (``exports``) and the verbs (``services``).

Views and tasks call ``services``; nothing else here writes to the database.
"""
