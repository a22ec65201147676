-- The bad release's column: the restore of the failure path takes it away again.
ALTER TABLE items ADD COLUMN priority INTEGER;
