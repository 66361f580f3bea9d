"""Resolve ``select=…,company:companies(name)`` embeds to a foreign-key relationship.

A relation is named by the target table (``companies``), optionally disambiguated by a hint — the
FK column (``staff!owner_id``) or constraint name (``staff!deals_owner_id_fkey``) — or directly by
the FK column (``owner_id(full_name)``), as PostgREST allows.
"""

from __future__ import annotations

from wexlot.crm.tables import CRM_TABLES, Relation, relations
from wexlot.errors import ApiError
from wexlot.rest.request import Embed


def resolve(table: str, embed: Embed) -> Relation:
    candidates = [r for r in relations(table) if r.target == embed.relation]
    if not candidates:
        # Embedding by FK column name: owner_id(full_name)
        candidates = [r for r in relations(table) if r.many_to_one and r.column == embed.relation]
    if embed.hint:
        candidates = [r for r in candidates if embed.hint in (r.column, r.constraint, r.target)]
    if not candidates:
        raise ApiError(
            400,
            "PGRST200",
            f"Could not find a relationship between '{table}' and '{embed.relation}' in the schema cache",
            details=f"Searched for a foreign key relationship between '{table}' and '{embed.relation}'"
            + (f" using the hint '{embed.hint}'" if embed.hint else "")
            + " in the schema 'public', but no matches were found.",
            hint=None if embed.relation in CRM_TABLES else f"Is '{embed.relation}' a table of this API?",
        )
    if len(candidates) > 1:
        raise ApiError(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{table}' and '{embed.relation}'",
            details=[  # type: ignore[arg-type]
                {
                    "cardinality": "many-to-one" if r.many_to_one else "one-to-many",
                    "embedding": f"{table} with {r.target}",
                    "relationship": f"{r.constraint} using {r.table if r.many_to_one else r.target}({r.column})",
                }
                for r in candidates
            ],
            hint=f"Try changing '{embed.relation}' to one of the following: "
            + ", ".join(f"'{embed.relation}!{r.constraint}'" for r in candidates)
            + ". Find the desired relationship in the 'details' key.",
        )
    return candidates[0]
