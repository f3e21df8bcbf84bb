"""writeback_intent: writes recorded before their batch is sent, so a killed push can be settled

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import canonical.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('writeback_intent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target_object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('target_remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('item_key', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('remote_object_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('marker', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('recorded_at', canonical.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('system', 'target_object_type', 'target_remote_id', 'item_key',
                        name='uq_writeback_intent_item')
    )


def downgrade() -> None:
    op.drop_table('writeback_intent')
