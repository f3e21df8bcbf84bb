"""Initial canonical schema and the contract views

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import canonical.types
from canonical.views import create_views_sql, drop_views_sql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('association',
    sa.Column('from_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('to_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('updated_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('from_id', 'to_id')
    )
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_association_source_id'), ['source_id'], unique=False)
        batch_op.create_index('ix_association_to', ['to_id'], unique=False)

    op.create_table('company',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('domain', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('industry', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('customer',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('company_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('first_seen_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('merged_into_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('merged_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('segment_since', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_purchase_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_activity_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_return_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_interaction_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_interaction_channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merged_into_id'), ['merged_into_id'], unique=False)

    op.create_table('customer_link',
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.PrimaryKeyConstraint('entity_id', 'customer_id')
    )
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.create_index('ix_customer_link_customer', ['customer_id'], unique=False)

    op.create_table('deal',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('pipeline', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('stage_label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('opened_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('company_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('interaction',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('occurred_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('score_max', sa.Float(), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('company_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('deal_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.create_index('ix_interaction_deal', ['deal_id'], unique=False, sqlite_where=sa.text('deal_id IS NOT NULL'), postgresql_where=sa.text('deal_id IS NOT NULL'))
        batch_op.create_index('ix_interaction_occurred', ['occurred_at'], unique=False)
        batch_op.create_index('ix_interaction_ticket', ['ticket_id'], unique=False, sqlite_where=sa.text('ticket_id IS NOT NULL'), postgresql_where=sa.text('ticket_id IS NOT NULL'))

    op.create_table('lifecycle_stage',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('stage_order', sa.Integer(), nullable=False),
    sa.Column('ruleset_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('owner',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('person_record',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('email_key', sqlmodel.sql.sqltypes.AutoString(length=330), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('phone_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('company_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('converted_to', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('xrefs', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('match_rule', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('match_evidence', sa.Text(), nullable=True),
    sa.Column('keys_version', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('person_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_record_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_record_email_key'), ['email_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_record_phone_key'), ['phone_key'], unique=False)

    op.create_table('pipeline_stage',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('pipeline_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('pipeline_label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('stage_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('display_order', sa.Integer(), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('first_seen_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('resolved_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'object_type', 'remote_id', name='uq_quarantine_remote')
    )
    op.create_table('source_record',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('canonical_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('remote_created_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('remote_updated_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('merged_into', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('raw_hash', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('last_run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'object_type', 'remote_id', name='uq_source_record_remote')
    )
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_record_canonical_id'), ['canonical_id'], unique=False)
        batch_op.create_index('ix_source_record_entity_seen', ['entity', 'last_seen_at'], unique=False)

    op.create_table('stage_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('stage_order', sa.Integer(), nullable=False),
    sa.Column('entered_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('exited_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('ruleset_version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('evidence_type', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('evidence_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('computed_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.create_index('ix_stage_history_customer', ['customer_id', 'entered_at'], unique=False)

    op.create_table('sync_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('flow_run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('started_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('records_read', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('deleted', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('pushed', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('conflicts', sa.Integer(), nullable=False),
    sa.Column('api_calls', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.create_index('ix_sync_run_run', ['run_id'], unique=False)
        batch_op.create_index('ix_sync_run_started', ['started_at'], unique=False)

    op.create_table('sync_state',
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=True),
    sa.Column('updated_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('system', 'object_type')
    )
    op.create_table('ticket',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('opened_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('owner_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('company_id', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('writeback_conflict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target_object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target_remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('hub_value', sa.Text(), nullable=True),
    sa.Column('crm_value', sa.Text(), nullable=True),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detected_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('writeback_conflict', schema=None) as batch_op:
        batch_op.create_index('ix_writeback_conflict_run', ['run_id'], unique=False)

    op.create_table('writeback_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target_object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target_remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('item_key', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('remote_object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_pushed_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_pushed_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'target_object_type', 'target_remote_id', 'item_key', name='uq_writeback_ledger_item')
    )

    for statement in create_views_sql(op.get_bind().dialect.name):
        op.execute(statement)

def downgrade() -> None:
    for statement in drop_views_sql():
        op.execute(statement)
    op.drop_table('writeback_ledger')
    with op.batch_alter_table('writeback_conflict', schema=None) as batch_op:
        batch_op.drop_index('ix_writeback_conflict_run')

    op.drop_table('writeback_conflict')
    op.drop_table('ticket')
    op.drop_table('sync_state')
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_run_started')
        batch_op.drop_index('ix_sync_run_run')

    op.drop_table('sync_run')
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_history_customer')

    op.drop_table('stage_history')
    with op.batch_alter_table('source_record', schema=None) as batch_op:
        batch_op.drop_index('ix_source_record_entity_seen')
        batch_op.drop_index(batch_op.f('ix_source_record_canonical_id'))

    op.drop_table('source_record')
    op.drop_table('quarantine')
    op.drop_table('pipeline_stage')
    with op.batch_alter_table('person_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_record_phone_key'))
        batch_op.drop_index(batch_op.f('ix_person_record_email_key'))
        batch_op.drop_index(batch_op.f('ix_person_record_customer_id'))

    op.drop_table('person_record')
    op.drop_table('owner')
    op.drop_table('lifecycle_stage')
    with op.batch_alter_table('interaction', schema=None) as batch_op:
        batch_op.drop_index('ix_interaction_ticket', sqlite_where=sa.text('ticket_id IS NOT NULL'), postgresql_where=sa.text('ticket_id IS NOT NULL'))
        batch_op.drop_index('ix_interaction_occurred')
        batch_op.drop_index('ix_interaction_deal', sqlite_where=sa.text('deal_id IS NOT NULL'), postgresql_where=sa.text('deal_id IS NOT NULL'))

    op.drop_table('interaction')
    op.drop_table('deal')
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_link_customer')

    op.drop_table('customer_link')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merged_into_id'))

    op.drop_table('customer')
    op.drop_table('company')
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.drop_index('ix_association_to')
        batch_op.drop_index(batch_op.f('ix_association_source_id'))

    op.drop_table('association')
