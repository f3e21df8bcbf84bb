"""The SQL views that are the public contract for analysts and downstream tools (docs/schema.md).

Names and columns are fixed; new columns may only be appended. They read `customer_link`, the table identity
resolution keeps, to know which customers a deal, ticket or interaction belongs to.

Migrations create the views from here; a change to a view ships in a new migration that recreates it.
"""

from __future__ import annotations

CONTRACT_VIEWS: dict[str, list[str]] = {
    "customer_360": [
        "customer_id", "email", "full_name", "phone", "company_name", "lifecycle_stage",
        "lifecycle_stage_entered_at", "segment", "open_deals", "won_deals", "won_amount", "open_tickets",
        "first_seen_at", "last_interaction_at", "last_interaction_channel",
    ],
    "customer_sources": ["customer_id", "system", "object_type", "remote_id", "is_deleted"],
    "unified_timeline": [
        "customer_id", "occurred_at", "system", "kind", "channel", "direction", "title", "detail", "remote_id",
    ],
    "lifecycle_history": ["customer_id", "stage", "entered_at", "exited_at", "rule"],
    "lifecycle_funnel": [
        "stage", "stage_order", "customers", "reached", "conversion_to_next", "median_days_in_stage",
    ],
}
HELPER_VIEWS: dict[str, list[str]] = {}

# Creation order matters: later views read earlier ones.
VIEW_ORDER = ["customer_sources", "lifecycle_history", "unified_timeline",
              "customer_360", "lifecycle_funnel"]

CUSTOMER_SOURCES = """
SELECT p.customer_id AS customer_id, s.system AS system, s.object_type AS object_type,
       s.remote_id AS remote_id, s.is_deleted AS is_deleted
  FROM person_record p JOIN source_record s ON s.id = p.id
 WHERE p.customer_id IS NOT NULL
"""

LIFECYCLE_HISTORY = """
SELECT h.customer_id AS customer_id, h.stage AS stage, h.entered_at AS entered_at,
       h.exited_at AS exited_at, h.rule_id || '@' || h.ruleset_version AS rule
  FROM stage_history h JOIN customer c ON c.id = h.customer_id
 WHERE c.merged_into_id IS NULL
"""

UNIFIED_TIMELINE = """
SELECT ec.customer_id AS customer_id, i.occurred_at AS occurred_at, s.system AS system, i.kind AS kind,
       i.channel AS channel, i.direction AS direction, i.subject AS title, i.body AS detail,
       s.remote_id AS remote_id
  FROM interaction i JOIN customer_link ec ON ec.entity_id = i.id JOIN source_record s ON s.id = i.id
UNION ALL
SELECT ec.customer_id, d.opened_at, s.system, 'deal_created', 'other', NULL, d.name,
       d.stage_label, s.remote_id
  FROM deal d JOIN customer_link ec ON ec.entity_id = d.id JOIN source_record s ON s.id = d.id
 WHERE d.opened_at IS NOT NULL
UNION ALL
SELECT ec.customer_id, d.closed_at, s.system, 'deal_' || d.status, 'other', NULL, d.name,
       d.stage_label, s.remote_id
  FROM deal d JOIN customer_link ec ON ec.entity_id = d.id JOIN source_record s ON s.id = d.id
 WHERE d.status IN ('won', 'lost') AND d.closed_at IS NOT NULL
UNION ALL
SELECT ec.customer_id, t.opened_at, s.system, 'ticket_opened', COALESCE(t.channel, 'support'),
       'inbound', t.subject, t.body, s.remote_id
  FROM ticket t JOIN customer_link ec ON ec.entity_id = t.id JOIN source_record s ON s.id = t.id
UNION ALL
SELECT ec.customer_id, t.closed_at, s.system, 'ticket_closed', COALESCE(t.channel, 'support'),
       'outbound', t.subject, t.status, s.remote_id
  FROM ticket t JOIN customer_link ec ON ec.entity_id = t.id JOIN source_record s ON s.id = t.id
 WHERE t.closed_at IS NOT NULL
"""

CUSTOMER_360 = """
SELECT c.id AS customer_id, c.email AS email, c.full_name AS full_name, c.phone AS phone,
       co.name AS company_name, h.stage AS lifecycle_stage, h.entered_at AS lifecycle_stage_entered_at,
       c.segment AS segment,
       COALESCE(d.open_deals, 0) AS open_deals, COALESCE(d.won_deals, 0) AS won_deals,
       COALESCE(d.won_amount, 0) AS won_amount, COALESCE(t.open_tickets, 0) AS open_tickets,
       c.first_seen_at AS first_seen_at, c.last_interaction_at AS last_interaction_at,
       c.last_interaction_channel AS last_interaction_channel
  FROM customer c
  LEFT JOIN company co ON co.id = c.company_id
  LEFT JOIN stage_history h ON h.customer_id = c.id AND h.exited_at IS NULL
  LEFT JOIN (
        SELECT ec.customer_id AS customer_id,
               SUM(CASE WHEN d.status = 'open' THEN 1 ELSE 0 END) AS open_deals,
               SUM(CASE WHEN d.status = 'won' THEN 1 ELSE 0 END) AS won_deals,
               SUM(CASE WHEN d.status = 'won' THEN COALESCE(d.amount, 0) ELSE 0 END) AS won_amount
          FROM deal d JOIN customer_link ec ON ec.entity_id = d.id
          JOIN source_record s ON s.id = d.id
         WHERE s.is_deleted = {false}
         GROUP BY ec.customer_id) d ON d.customer_id = c.id
  LEFT JOIN (
        SELECT ec.customer_id AS customer_id, COUNT(*) AS open_tickets
          FROM ticket t JOIN customer_link ec ON ec.entity_id = t.id
          JOIN source_record s ON s.id = t.id
         WHERE t.is_closed = {false} AND s.is_deleted = {false}
         GROUP BY ec.customer_id) t ON t.customer_id = c.id
 WHERE c.merged_into_id IS NULL
"""

LIFECYCLE_FUNNEL = """
WITH live_history AS (
    SELECT h.* FROM stage_history h JOIN customer c ON c.id = h.customer_id
     WHERE c.merged_into_id IS NULL),
current_stage AS (
    SELECT stage, COUNT(*) AS customers FROM live_history WHERE exited_at IS NULL GROUP BY stage),
furthest AS (
    SELECT customer_id, MAX(stage_order) AS furthest_order FROM live_history GROUP BY customer_id),
reached AS (
    SELECT s.key AS stage, s.stage_order AS stage_order, COUNT(f.customer_id) AS reached
      FROM lifecycle_stage s LEFT JOIN furthest f ON f.furthest_order >= s.stage_order
     GROUP BY s.key, s.stage_order),
stays AS (
    SELECT stage, {days} AS days FROM live_history WHERE exited_at IS NOT NULL),
{median_cte}
SELECT r.stage AS stage, r.stage_order AS stage_order, COALESCE(cs.customers, 0) AS customers,
       r.reached AS reached,
       CASE WHEN r.reached > 0 AND nxt.reached IS NOT NULL
            THEN CAST(nxt.reached AS {real}) / r.reached END AS conversion_to_next,
       m.median_days AS median_days_in_stage
  FROM reached r
  LEFT JOIN current_stage cs ON cs.stage = r.stage
  LEFT JOIN reached nxt ON nxt.stage_order = (
        SELECT MIN(s2.stage_order) FROM lifecycle_stage s2 WHERE s2.stage_order > r.stage_order)
  LEFT JOIN medians m ON m.stage = r.stage
"""

SQLITE_MEDIAN = """ranked AS (
    SELECT stage, days, ROW_NUMBER() OVER (PARTITION BY stage ORDER BY days) AS rn,
           COUNT(*) OVER (PARTITION BY stage) AS n FROM stays),
medians AS (
    SELECT stage, AVG(days) AS median_days FROM ranked
     WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY stage)"""

POSTGRES_MEDIAN = """medians AS (
    SELECT stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median_days
      FROM stays GROUP BY stage)"""


def view_sql(dialect: str) -> dict[str, str]:
    """The SELECT of every view for a dialect (`sqlite` or `postgresql`), in creation order."""
    if dialect == "postgresql":
        false, real = "false", "double precision"
        days = "EXTRACT(EPOCH FROM (exited_at - entered_at)) / 86400.0"
        median = POSTGRES_MEDIAN
    else:
        false, real = "0", "REAL"
        days = "julianday(exited_at) - julianday(entered_at)"
        median = SQLITE_MEDIAN
    bodies = {
        "customer_sources": CUSTOMER_SOURCES,
        "lifecycle_history": LIFECYCLE_HISTORY,
        "unified_timeline": UNIFIED_TIMELINE,
        "customer_360": CUSTOMER_360,
        "lifecycle_funnel": LIFECYCLE_FUNNEL.replace("{median_cte}", median),
    }
    return {name: bodies[name].replace("{false}", false).replace("{real}", real).replace("{days}", days)
            for name in VIEW_ORDER}


def create_views_sql(dialect: str) -> list[str]:
    return [f"CREATE VIEW {name} AS {body}" for name, body in view_sql(dialect).items()]


def drop_views_sql() -> list[str]:
    return [f"DROP VIEW IF EXISTS {name}" for name in reversed(VIEW_ORDER)]
