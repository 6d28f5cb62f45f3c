"""Freezing by depth: `freeze.trainable_blocks=N` trains the last N blocks of the backbone, as its
network description lists them (src/networks), for any model of any source."""

from __future__ import annotations

from collections.abc import Sequence

from src.networks.description import Block
from src.utils.errors import UserError


def last_blocks(blocks: Sequence[Block], count: object, network: str) -> list[str]:
    """Names in the backbone's last `count` blocks (`network` names it in the message)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(blocks):
        raise UserError(
            f"freeze.trainable_blocks={count!r}: {network} has {len(blocks)} blocks "
            f"({', '.join(block_label(block) for block in blocks)}); give 0 (the head alone) to "
            f"{len(blocks)} (everything), or freeze.trainable_blocks=null"
        )
    return [name for block in blocks[len(blocks) - count :] for name in block]


def block_label(block: Block) -> str:
    """A block as one name: its modules joined by +."""
    return "+".join(block)
