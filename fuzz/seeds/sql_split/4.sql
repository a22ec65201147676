-- v3.0.0 adds items.priority; the restore of the failure path takes it away again.
ALTER TABLE items ADD COLUMN priority INTEGER;
