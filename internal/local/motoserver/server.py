"""moto_server as Flagline runs it: the same application as the
`moto_server` command, with three adjustments that keep moto to what
DynamoDB documents.

1. DynamoDB and DynamoDB Streams requests are served one at a time.
   DynamoDB applies each conditional write atomically; moto's threaded
   server does not (two concurrent UpdateItem calls with the same condition
   can both succeed). Flagline's exactly-once counting rests on those
   conditions, so the local stand-in must keep them. Other services (SNS,
   SQS) stay concurrent, so SQS long polls do not stall DynamoDB.

2. TransactWriteItems snapshots only the items it touches. moto deep-copies
   every table a transaction names, once per transaction item, and swaps the
   copy in on failure: the cost grows with the table (about 0.1 s at 1,000
   items) and the garbage stalls the whole process, and the swap leaves
   stream readers on the discarded table's stream. Here a transaction saves
   the items it names and the length of each table's stream; if it fails,
   those items are put back and the records it wrote are dropped, so a
   cancelled transaction leaves neither items nor stream records, as
   DynamoDB's all-or-nothing transactions do:
   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
   (Requests are serialised by 1, so nothing interleaves with the restore.)

3. An UpdateItem that creates its item writes one stream record. moto first
   stores the bare key (emitting an INSERT with only the key attributes) and
   then the updated item (a second INSERT); DynamoDB Streams writes one
   record per item modification, each exactly once:
   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html

4. What survives a full garbage collection is frozen (see freeze_survivors),
   so collections stay short however many items moto holds.
"""
import argparse
import copy
import gc
import os
import signal
import sys
import threading
import types

from werkzeug.serving import run_simple

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def _copy_keeping_tables() -> types.SimpleNamespace:
    """A `copy` module for moto's transaction code whose deepcopy hands a
    Table back as it is: the transaction's own snapshot replaces moto's."""

    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    return types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)


def _item_key(backend, table, op_type, op):
    """The (hash, range) key a transaction item writes or checks, or None
    when the item is malformed (moto then cancels the transaction itself)."""
    try:
        keys = op["Item"] if op_type == "Put" else op["Key"]
        return backend.get_keys_value(table, keys)
    except Exception:  # noqa: BLE001 moto reports the malformed item
        return None


def patch_transact_write_items() -> None:
    original = DynamoDBBackend.transact_write_items
    keep_tables = _copy_keeping_tables()

    def transact_write_items(self, transact_items):
        saved = {}  # (table name, hash, range) -> copy of the item, or None
        streams = {}  # table name -> (table, stream length before)
        for entry in transact_items:
            for op_type, op in entry.items():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is None:
                    continue
                if table.stream_shard is not None:
                    streams.setdefault(table.name, (table, len(table.stream_shard.items)))
                key = _item_key(self, table, op_type, op)
                if key is None or (table.name, *key) in saved:
                    continue
                hash_key, range_key = key
                saved[(table.name, hash_key, range_key)] = copy.deepcopy(
                    table.get_item(hash_key, range_key)
                )
        dynamodb_models.copy = keep_tables
        try:
            return original(self, transact_items)
        except BaseException:
            for (name, hash_key, range_key), item in saved.items():
                _restore(self.tables[name], hash_key, range_key, item)
            for table, length in streams.values():
                if table.stream_shard is not None:
                    del table.stream_shard.items[length:]
            raise
        finally:
            dynamodb_models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items


def _restore(table, hash_key, range_key, item) -> None:
    """Puts item (None: no item) back under its key in table."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    if item is None:
        table.items[hash_key].pop(range_key, None)
        if not table.items[hash_key]:
            del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = item


def patch_update_item() -> None:
    original = DynamoDBBackend.update_item

    def update_item(self, table_name, *args, **kwargs):
        table = self.tables.get(table_name)
        shard = table.stream_shard if table is not None else None
        before = len(shard.items) if shard is not None else 0
        item = original(self, table_name, *args, **kwargs)
        if shard is not None and table.stream_shard is shard and len(shard.items) == before + 2:
            # The bare-key INSERT moto wrote on the way: drop it, and give
            # the real record its sequence number.
            del shard.items[before]
            seq = shard.starting_sequence_number + before
            shard.items[before].record["dynamodb"]["SequenceNumber"] = str(seq)
        return item

    DynamoDBBackend.update_item = update_item


def freeze_survivors() -> None:
    """Keeps Python's full collections short as moto's state grows.

    moto keeps every item and stream record for the life of the process, and
    a full collection walks all of them while holding the interpreter: with
    a few thousand reports that stalls every request for up to seconds. What
    survives a full collection is moto's state, which lives on; freezing it
    (gc.freeze) leaves the next full collection only what came since.
    """
    gc.freeze()  # the modules and backends loaded so far

    def after_collection(phase, info):
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(after_collection)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    patch_transact_write_items()
    patch_update_item()
    app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def serve(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    freeze_survivors()
    run_simple(args.host, args.port, serve, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
