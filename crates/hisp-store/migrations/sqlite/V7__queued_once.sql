-- Messages queued once under a name (`Store::enqueue_once`), such as the
-- demo's welcome message: the row is written in the enqueue's
-- transaction, so a message is queued under a name at most once however
-- often, and wherever, its sending is interrupted.

CREATE TABLE queued_once (
    mark    TEXT PRIMARY KEY,
    message INTEGER NOT NULL REFERENCES messages(id),
    at      INTEGER NOT NULL
);
