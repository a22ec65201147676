-- Once no node runs the old release: what only it used goes (contract).
DROP TABLE legacy_sessions;
