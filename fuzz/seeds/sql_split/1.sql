-- v1.0.0: the items the service keeps, and the sessions table only v1 uses.
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE legacy_sessions (id INTEGER PRIMARY KEY, token TEXT NOT NULL);
INSERT INTO items (name) VALUES ('first'), ('second');
