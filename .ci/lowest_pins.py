"""Print ``name==X`` for each named dependency that pyproject.toml declares as ``name>=X``: the lowest
versions CI installs in its second environment. Fails when a name has no ``>=`` bound."""
import pathlib
import re
import sys
import tomllib

deps = tomllib.loads((pathlib.Path(__file__).parent.parent / 'pyproject.toml').read_text())['project']['dependencies']
pins = []
for name in sys.argv[1:]:
    bound = next((m.group(1) for d in deps if (m := re.fullmatch(rf'{re.escape(name)}\s*>=\s*([\w.]+)\s*', d))), None)
    if bound is None:
        sys.exit(f'lowest_pins: pyproject.toml declares no {name}>=X')
    pins.append(f'{name}=={bound}')
print(' '.join(pins))
