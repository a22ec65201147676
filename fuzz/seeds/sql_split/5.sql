-- The old release: the items the service keeps, and the sessions table only it uses.
CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE legacy_sessions (id BIGSERIAL PRIMARY KEY, token TEXT NOT NULL);
INSERT INTO items (name) VALUES ('first'), ('second');
