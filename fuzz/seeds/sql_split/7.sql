-- The new release reads items.note; the old one ignores the column (expand).
ALTER TABLE items ADD COLUMN note TEXT;
