"""Validates a JSON document against one of the JSON schemas in this directory.

Usage: validate.py SCHEMA DOCUMENT. References between the schemas (CycloneDX's bom schema
names spdx.schema.json and jsf-0.82.schema.json) resolve to the copies here, never to the
network. Prints each error with the path of the value it is about and exits 1 if there is one,
0 if the document is valid, 2 if the schema or the document cannot be read.
"""

import json
import pathlib
import sys

import jsonschema


def main():
    if len(sys.argv) != 3:
        print("usage: validate.py SCHEMA DOCUMENT", file=sys.stderr)
        return 2
    here = pathlib.Path(__file__).resolve().parent
    try:
        schemas = {path.name: json.loads(path.read_text()) for path in here.glob("*.json")}
        schema = schemas[sys.argv[1]]
        document = json.loads(pathlib.Path(sys.argv[2]).read_text())
    except (OSError, KeyError, ValueError) as error:
        print(f"cannot read: {error!r}", file=sys.stderr)
        return 2
    # Each schema under its own id and its file name, so that relative and absolute
    # references both stay in this directory.
    store = {}
    for name, each in schemas.items():
        store[each.get("$id") or each.get("id")] = each
        store[name] = each
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    resolver = jsonschema.RefResolver.from_schema(schema, store=store)
    validator = validator_class(
        schema, resolver=resolver, format_checker=validator_class.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    for error in errors:
        path = "/".join(str(part) for part in error.absolute_path)
        print(f"/{path}: {error.message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
