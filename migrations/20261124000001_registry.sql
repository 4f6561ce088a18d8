-- The registry's storage. Several registry processes share this database; every invariant the
-- registry promises across replicas (unique ids, one id per schema, gap-free versions) is held
-- here, by constraints, a sequence and row locks, not by any one process.

-- Global schema ids. A sequence, never a counter row: concurrent registrations never wait on it.
-- Gaps are possible (a rolled-back registration burns its id), as in Confluent.
CREATE SEQUENCE schema_ids AS integer START WITH 1 MINVALUE 1;

-- One row per distinct schema. `fingerprint` is the SHA-256 of the schema type, the stored text
-- and its references; its uniqueness is what makes "the same schema gets the same id" hold
-- across replicas. Rows are immutable and never deleted: a record framed with an id stays
-- decodable after its subject versions are deleted.
CREATE TABLE schemas (
    id          integer PRIMARY KEY,
    fingerprint bytea   NOT NULL UNIQUE,
    schema_type text    NOT NULL DEFAULT 'AVRO',
    schema_text text    NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The references of a schema: named types it takes from other subject versions.
CREATE TABLE schema_references (
    schema_id   integer NOT NULL REFERENCES schemas (id),
    position    integer NOT NULL,
    name        text    NOT NULL,
    ref_subject text    NOT NULL,
    ref_version integer NOT NULL,
    PRIMARY KEY (schema_id, position)
);
CREATE INDEX schema_references_target ON schema_references (ref_subject, ref_version);

-- Every subject that ever held a version. The row is the lock that serialises version
-- allocation within a subject (SELECT ... FOR UPDATE), so versions have no gaps and two
-- replicas never hand out the same version.
CREATE TABLE subjects (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subject_versions (
    subject    text    NOT NULL REFERENCES subjects (name),
    version    integer NOT NULL CHECK (version > 0),
    schema_id  integer NOT NULL REFERENCES schemas (id),
    deleted    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version)
);
CREATE INDEX subject_versions_schema ON subject_versions (schema_id);

-- Compatibility level and mode, per subject; the empty subject '' holds the global settings.
CREATE TABLE configs (
    subject       text PRIMARY KEY,
    compatibility text CHECK (compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                                'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE')),
    mode          text CHECK (mode IN ('READWRITE', 'READONLY', 'IMPORT'))
);
