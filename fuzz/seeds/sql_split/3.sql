-- v2.0.0 reads items.note (it is not ready without it); v1 ignores the new column.
ALTER TABLE items ADD COLUMN note TEXT;
