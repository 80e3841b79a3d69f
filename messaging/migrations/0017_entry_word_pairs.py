"""Phrase search through an index of adjacent word pairs (PostgreSQL only).

The GIN index on `search_document` knows which entries hold a word, not where: a phrase of
two common words ("saw thanks", both in half the entries, never adjacent) made PostgreSQL
fetch and recheck every entry holding both, about 52,000 rows and 40-60 ms on a
100,000-entry thread. `word_pairs` stores each entry's adjacent lexemes ("saw thank"), from
the same parse as `search_document`, once at insert; a phrase's own pairs must all be there,
so `word_pairs @> pairs` is looked up in its GIN index first and the phrase is rechecked on
those few rows only (messaging.queries, bench/search.py, docs/performance.md "perf2").

A stored column, not an index on the expression: a bitmap scan rechecks its conditions on
every row it visits, and recomputing the pairs there cost 1.4 s for a common phrase. It is
computed from the body (a generated column cannot read another), the database's alone like
`search_document`, and left out of the append-only trigger's comparison likewise.
"""

from django.db import migrations

WORD_PAIRS = """
CREATE OR REPLACE FUNCTION messaging_word_pairs(document tsvector) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT first.lexeme || ' ' || second.lexeme), '{}')
    FROM (SELECT lexeme, unnest(positions) AS at FROM unnest(document)) AS first
    JOIN (SELECT lexeme, unnest(positions) AS at FROM unnest(document)) AS second
        ON second.at = first.at + 1
$$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION messaging_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'messaging_entry is append-only: DELETE of entry % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - 'read_at' - 'search_document' - 'transcript_document' - '{ignored}')
       IS DISTINCT FROM
       (to_jsonb(OLD) - 'read_at' - 'search_document' - 'transcript_document' - '{ignored}') THEN
        RAISE EXCEPTION 'messaging_entry is append-only: content of entry % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

FORWARD = [
    WORD_PAIRS,
    APPEND_ONLY.format(ignored="word_pairs"),
    "ALTER TABLE messaging_entry ADD COLUMN word_pairs text[] GENERATED ALWAYS AS "
    "(messaging_word_pairs(to_tsvector('english'::regconfig, body))) STORED",
    "CREATE INDEX entry_word_pairs ON messaging_entry USING gin (word_pairs)",
]

BACKWARD = [
    "DROP INDEX IF EXISTS entry_word_pairs",
    "ALTER TABLE messaging_entry DROP COLUMN IF EXISTS word_pairs",
    APPEND_ONLY.format(ignored="read_at"),
    "DROP FUNCTION IF EXISTS messaging_word_pairs(tsvector)",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0016_card_action_link")]
    operations = [migrations.RunPython(forward, backward)]
