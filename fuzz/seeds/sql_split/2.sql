-- Once every node runs v2.0.0: nothing reads legacy_sessions any more.
DROP TABLE legacy_sessions;
