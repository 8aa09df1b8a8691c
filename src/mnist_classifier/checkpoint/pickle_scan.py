"""What a checkpoint's pickle holds, read from its opcodes before anything is unpickled.

- How many values it unfolds into. A pickle can refer to one value many times (its memo), so a few
  kilobytes can describe a list nested 40 deep whose unfolding holds 2**40 items, or a dict key of 45 nested
  tuples that unpickling hashes 2**45 times: weights_only=True unpickles both (no code runs, but the
  process hangs), and printing either in an error message hangs too. torch.save writes a few thousand
  values for a checkpoint of this project.
- Which globals it calls. weights_only=True allows constructors such as bytearray(n): 30 bytes of pickle
  that allocate 2 GB. torch.save writes only the tensor-rebuilding function, typed storages and
  OrderedDict for a checkpoint of this project."""

from __future__ import annotations

import pickletools
from typing import Any

# opcodes that add to the container below their arguments (it stays on the stack), rather than make a value
IN_PLACE = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
# what torch.save (pickle protocol 2: GLOBAL opcodes) writes for a checkpoint of this project
STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
ALLOWED_GLOBALS = frozenset(
    {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter"}
    | {f"torch {kind}Storage" for kind in STORAGES}
)


def other_globals(pickled: bytes) -> list[str]:
    """The globals the pickle calls that torch.save does not write for a checkpoint here ("module name");
    STACK_GLOBAL (protocol 4's, which takes its names from the stack) counts as one."""
    return [
        "STACK_GLOBAL" if opcode.name == "STACK_GLOBAL" else str(arg)
        for opcode, arg, _ in pickletools.genops(pickled)
        if opcode.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ") and str(arg) not in ALLOWED_GLOBALS
    ]


class _Value:
    """A value the pickle makes: the values it holds, shared with every other place that refers to it."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[_Value]) -> None:
        self.parts = parts


def unfolded_size(pickled: bytes, limit: int) -> int:
    """The number of values `pickled` holds with every shared reference written out, or `limit` + 1 once it
    is known to exceed `limit` (a reference cycle counts as exceeding it). Raises ValueError for a pickle
    pickletools cannot read."""
    stack: list[Any] = []
    memo: dict[Any, _Value] = {}
    for opcode, arg, _ in pickletools.genops(pickled):
        if opcode.name == "STOP":
            return _size(stack[-1], limit)
        if opcode.name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif opcode.name in MEMO_PUT:
            memo[arg] = stack[-1]
        elif opcode.name in MEMO_GET:
            stack.append(memo[arg])
        elif opcode.name == "MARK":
            stack.append(pickletools.markobject)
        else:
            _apply(opcode, stack)
    raise ValueError("the pickle has no STOP opcode")


def _apply(opcode: pickletools.OpcodeInfo, stack: list[Any]) -> None:
    """Pop what the opcode takes (down to the mark, for a slice) and push what it makes from them."""
    taken: list[_Value] = []
    for item in reversed(opcode.stack_before):
        if item is pickletools.stackslice:
            while stack[-1] is not pickletools.markobject:
                taken.append(stack.pop())
        else:
            taken.append(stack.pop())  # a value, or the mark itself
    taken = [value for value in reversed(taken) if isinstance(value, _Value)]
    if opcode.name in IN_PLACE:
        container, *added = taken
        container.parts.extend(added)
        stack.append(container)
    else:
        stack.extend(_Value(list(taken)) for _ in opcode.stack_after)


def _size(root: _Value, limit: int) -> int:
    """1 + the unfolded sizes of the parts, each shared value counted once per reference, without recursion
    (a crafted nesting is deep) and stopping as soon as the total passes `limit`."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    todo: list[tuple[_Value, bool]] = [(root, False)]
    while todo:
        value, parts_done = todo.pop()
        if parts_done:
            on_path.discard(id(value))
            sizes[id(value)] = min(limit + 1, 1 + sum(sizes[id(part)] for part in value.parts))
        elif id(value) not in sizes:
            if id(value) in on_path:
                return limit + 1
            on_path.add(id(value))
            todo.append((value, True))
            todo.extend((part, False) for part in value.parts if id(part) not in sizes)
    return sizes[id(root)]
