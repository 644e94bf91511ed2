"""merge the user profile and recall everywhere

Revision ID: ed2d30551a35
Revises: 047c08706609, f925d021d8cc
Create Date: 2026-12-01 19:43:42.684126

"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "ed2d30551a35"
down_revision: str | Sequence[str] | None = ("047c08706609", "f925d021d8cc")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    pass


def downgrade() -> None:
    """Downgrade schema."""
    pass
