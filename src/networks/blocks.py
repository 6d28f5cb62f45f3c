"""Helpers that sources use to describe a backbone's blocks: modules, or parameters that belong
to no module of their own, by dotted name."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from src.networks.description import Block


def within(name: str, prefix: str) -> bool:
    """Whether the module, parameter or state-dict key `name` is `prefix` or lies inside it."""
    return name == prefix or name.startswith(prefix + ".")


def within_any(name: str, prefixes: Iterable[str]) -> bool:
    return any(within(name, prefix) for prefix in prefixes)


def children_of(net: nn.Module, path: str) -> list[Block]:
    """Each child of the module at `path` as a block of its own."""
    return [(f"{path}.{name}",) for name, _ in net.get_submodule(path).named_children()]


def block_parameters(net: nn.Module, block: Block) -> list[str]:
    """Dotted names of the parameters a block holds."""
    return [name for name, _ in net.named_parameters() if within_any(name, block)]


def with_parameters(net: nn.Module, blocks: Iterable[Block]) -> list[Block]:
    """The blocks that hold parameters, in order."""
    names = [name for name, _ in net.named_parameters()]
    return [block for block in blocks if any(within_any(name, block) for name in names)]


def top_level_blocks(net: nn.Module, head: str) -> list[Block]:
    """Each top-level child but the head's as a block: the blocks of a network without a
    better description."""
    return [(name,) for name, _ in net.named_children() if not within(head, name)]


def join_stragglers(net: nn.Module, head: str, blocks: list[Block]) -> list[Block]:
    """The blocks, the last of them joined by the modules with parameters that no block holds
    (the head, and the containers of blocks whose own parameters train only when everything
    does, such as a ViT's class token, excepted)."""
    if not blocks:
        return blocks
    covered = [name for block in blocks for name in block]
    outside: dict[str, None] = {}
    for parameter, _ in net.named_parameters():
        module = parameter.rpartition(".")[0]
        if within(parameter, head) or within_any(parameter, covered):
            continue
        if module == "" or any(name.startswith(module + ".") for name in covered):
            continue
        outside[module] = None
    return [*blocks[:-1], (*blocks[-1], *outside)]


def covering_names(net: nn.Module, parameters: Iterable[str]) -> Block:
    """The fewest dotted names that cover exactly `parameters`: whole modules where all of a
    module's parameters are among them, else the parameters themselves, in network order."""
    wanted = set(parameters)
    all_names = [name for name, _ in net.named_parameters()]
    chosen: dict[str, None] = {}
    for name in all_names:
        if name not in wanted:
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if all(other in wanted for other in all_names if within(other, prefix)):
                chosen[prefix] = None
                break
    return tuple(chosen)
