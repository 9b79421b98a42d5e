"""The deletion-vector formats, checked against PROTOCOL.md's examples and delta-rs's reader."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from pyroaring import BitMap64

from servicetsunami.engines.local import deletions
from servicetsunami.errors import Conflict


def test_z85_names_the_uuid_of_the_protocols_example() -> None:
    encoded = "ab^-aqEH.-t@S}K{vb[*k^"  # PROTOCOL.md, "JSON Example 1"
    assert uuid.UUID(bytes=deletions.z85decode(encoded[2:])) == uuid.UUID("d2c639aa-8816-431a-aaf6-d3fe2512ff61")
    assert deletions.z85encode(deletions.z85decode(encoded[2:])) == encoded[2:]
    with pytest.raises(ValueError, match="4-byte"):
        deletions.z85encode(b"abc")


def test_vectors_written_to_a_file_read_back_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    vectors = [BitMap64([0, 5, 70_000, 2**33]), BitMap64(range(0, 1000, 3))]
    descriptors = deletions.write_vectors(tmp_path, vectors)
    assert [d["cardinality"] for d in descriptors] == [4, 334]
    assert [deletions.read_vector(tmp_path, d) for d in descriptors] == vectors
    inline = {"storageType": "i", "sizeInBytes": len(data := deletions.serialize(vectors[0]))}
    inline["pathOrInlineDv"] = deletions.z85encode(data + b"\0" * (-len(data) % 4))
    assert deletions.read_vector(tmp_path, inline) == vectors[0]
    file = next(tmp_path.glob("deletion_vector_*.bin"))
    damaged = bytearray(file.read_bytes())
    damaged[descriptors[0]["offset"] + 10] ^= 0xFF
    file.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="checksum"):
        deletions.read_vector(tmp_path, descriptors[0])


def _table_with_vector(path: Path) -> DeltaTable:
    write_deltalake(str(path), pa.table({"id": list(range(10))}))
    write_deltalake(str(path), pa.table({"id": list(range(10, 20))}), mode="append")
    dt = DeltaTable(str(path))
    live = deletions.live_adds(path, dt.version())
    first = min(live.values(), key=lambda a: json.loads(a["stats"])["minValues"]["id"])
    [descriptor] = deletions.write_vectors(path, [BitMap64([1, 2, 9])])
    actions = [
        *deletions.upgrade_actions(dt),
        {"remove": {"path": first["path"], "deletionTimestamp": 1, "dataChange": True, "size": first["size"]}},
        {"add": {**first, "deletionVector": descriptor}},
    ]
    props = CommitProperties(custom_metadata={"note": "x"}, app_transactions=[Transaction("app", 3)])
    deletions.commit(path, dt.version(), actions, operation="DELETE", parameters={}, metrics={}, props=props)
    return DeltaTable(str(path))


def test_a_commit_of_our_own_is_read_by_delta_rs_with_its_vector_and_transaction(tmp_path: Path) -> None:
    dt = _table_with_vector(tmp_path)
    assert sorted(pa.table(dt.scan()).column("id").to_pylist()) == [0, *range(3, 9), *range(10, 20)]
    assert dt.transaction_version("app") == 3
    assert dt.history(1)[0]["note"] == "x"
    assert "deletionVectors" in (dt.protocol().reader_features or [])
    assert deletions.upgrade_actions(dt) == []  # turned on once
    deleted = deletions.deleted_rows(dt)
    assert deleted is not None
    assert sorted(deleted.table.column("pos").to_pylist()) == [1, 2, 9]
    assert sorted(r["id"] for r in deletions.scan(dt).read_all().to_pylist()) == sorted(
        pa.table(dt.scan()).column("id").to_pylist()
    )


def test_the_log_reader_agrees_with_delta_rs_across_a_checkpoint(tmp_path: Path) -> None:
    dt = _table_with_vector(tmp_path)
    dt.create_checkpoint()
    write_deltalake(str(tmp_path), pa.table({"id": [99]}), mode="append")
    dt = DeltaTable(str(tmp_path))
    live = deletions.live_adds(tmp_path, dt.version())
    assert sorted(live) == sorted(pa.table(dt.get_add_actions(flatten=True)).column("path").to_pylist())
    assert sum(1 for a in live.values() if a.get("deletionVector")) == 1
    assert deletions.live_adds(tmp_path, 1).keys() == set(
        pa.table(DeltaTable(str(tmp_path), version=1).get_add_actions(flatten=True)).column("path").to_pylist()
    )


def test_a_commit_to_a_version_that_exists_writes_nothing(tmp_path: Path) -> None:
    dt = _table_with_vector(tmp_path)
    with pytest.raises(Conflict, match="another writer"):
        deletions.commit(
            tmp_path, dt.version() - 1, [], operation="X", parameters={}, metrics={}, props=CommitProperties()
        )
    assert DeltaTable(str(tmp_path)).version() == dt.version()
    assert not list((tmp_path / "_delta_log").glob(".*.tmp"))


def test_tables_with_features_our_commits_do_not_follow_are_not_written(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write_deltalake(str(plain), pa.table({"id": [1]}))
    assert deletions.writable(DeltaTable(str(plain)))
    feed = tmp_path / "feed"
    write_deltalake(str(feed), pa.table({"id": [1]}), configuration={"delta.enableChangeDataFeed": "true"})
    assert not deletions.writable(DeltaTable(str(feed)))
    off = tmp_path / "off"
    write_deltalake(str(off), pa.table({"id": [1]}), configuration={"delta.enableDeletionVectors": "false"})
    assert not deletions.writable(DeltaTable(str(off)))
    assert deletions.writable(_table_with_vector(tmp_path / "vectors"))


def test_the_rows_read_from_the_log_match_delta_rs_and_name_themselves(tmp_path: Path) -> None:
    dt = _table_with_vector(tmp_path)
    ours = deletions.deleted_rows(dt)
    theirs = deletions._deleted_rows_from_delta_rs(dt)
    assert ours is not None and theirs is not None
    assert ours.table.sort_by("pos").to_pylist() == theirs.table.sort_by("pos").to_pylist()
    assert ours.files == theirs.files
    again = deletions.deleted_rows(DeltaTable(str(tmp_path)))
    assert again is not None and again.name == ours.name
