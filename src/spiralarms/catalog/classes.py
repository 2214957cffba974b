"""Arm-number classes of Galaxy Zoo 2 task T11 and the paper's class merges.

The six classes, in GZ2 answer order, are ``1``, ``2``, ``3``, ``4``, ``5+`` (more
than four arms) and ``?`` (can't tell). A merge joins adjacent classes; its name is
its members joined by a comma, in class order (``3,4`` or ``4,5+``).
"""

from __future__ import annotations

from collections.abc import Sequence

from spiralarms.errors import SpiralArmsError

#: The T11 classes in GZ2 answer order.
ARM_CLASSES: tuple[str, ...] = ("1", "2", "3", "4", "5+", "?")

#: The paper's three class configurations (section 5.2, Figure 7).
PAPER_MERGES: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "3,4": ("3", "4"),
    "4,5+": ("4", "5+"),
}


def parse_merge(merge: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Parse a class merge such as ``"3,4"`` into its member classes.

    Parameters
    ----------
    merge : str, sequence of str or None
        Members joined by commas (``"4,5+"``), a sequence of members, or ``None``
        (no merge).

    Returns
    -------
    tuple of str or None
        The members in class order, or ``None`` for no merge.

    Raises
    ------
    SpiralArmsError
        If a member is not a T11 class, is repeated, fewer than two are given, or
        they are not adjacent in class order.
    """
    if merge is None:
        return None
    members = [m.strip() for m in merge.split(",")] if isinstance(merge, str) else list(merge)
    if members in (["all"], ["none"], [""]):
        return None
    unknown = [m for m in members if m not in ARM_CLASSES]
    if unknown:
        raise SpiralArmsError(
            f"merge {','.join(members)!r}: unknown class {unknown[0]!r}; "
            f"classes are {', '.join(ARM_CLASSES)}"
        )
    if len(set(members)) != len(members) or len(members) < 2:
        raise SpiralArmsError(
            f"merge {','.join(members)!r}: give two or more distinct classes, e.g. 3,4"
        )
    positions = sorted(ARM_CLASSES.index(m) for m in members)
    if positions != list(range(positions[0], positions[0] + len(positions))):
        raise SpiralArmsError(
            f"merge {','.join(members)!r}: merged classes must be adjacent in the order "
            f"{', '.join(ARM_CLASSES)}"
        )
    return tuple(ARM_CLASSES[p] for p in positions)


def arm_classes(merge: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """Class names after an optional merge, in class order.

    Examples
    --------
    >>> arm_classes()
    ('1', '2', '3', '4', '5+', '?')
    >>> arm_classes("3,4")
    ('1', '2', '3,4', '5+', '?')
    >>> arm_classes("4,5+")
    ('1', '2', '3', '4,5+', '?')
    """
    members = parse_merge(merge)
    if members is None:
        return ARM_CLASSES
    merged_name = ",".join(members)
    out: list[str] = []
    for name in ARM_CLASSES:
        if name in members:
            if merged_name not in out:
                out.append(merged_name)
        else:
            out.append(name)
    return tuple(out)


def class_mapping(merge: str | Sequence[str] | None = None) -> dict[str, str]:
    """Map each original T11 class to its class name after a merge.

    >>> class_mapping("3,4")["4"]
    '3,4'
    """
    members = parse_merge(merge)
    if members is None:
        return {c: c for c in ARM_CLASSES}
    merged_name = ",".join(members)
    return {c: (merged_name if c in members else c) for c in ARM_CLASSES}
