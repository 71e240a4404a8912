-- What the write path does with a chunk whose text names a person who is
-- being or has been erased (see `screening`). Collections registered before
-- keep today's behaviour: accept.
ALTER TABLE collections ADD COLUMN screening text NOT NULL DEFAULT 'accept'
    CHECK (screening IN ('accept', 'report', 'redact', 'reject'));
