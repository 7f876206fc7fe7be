#!/usr/bin/env bash
# CI, after the tests: does an installed wheel do the main job? Builds the wheel, installs it
# (not editable) into a second, fresh virtual environment and, from a folder outside the checkout,
# renders synthetic characters, colours one with the shipped model, evaluates it, trains 4 steps on
# the synthetic data, colours with that run and exports it as a carded hub directory.
#
#   .ci/wheel_smoke.sh              # a fresh venv in a temporary folder (deleted afterwards)
#   .ci/wheel_smoke.sh /tmp/venv    # reuse (or create) this venv: dependencies installed once
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${1:-$work/venv}"
start=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - start)); }

step "build the wheel"
python3 -m pip wheel --no-deps -q -w "$work/dist" "$repo"
whl=$(ls "$work"/dist/textcolor-*.whl)
unzip -l "$whl" | grep -E "assets/(tags/characters.csv|default/model.safetensors)" >/dev/null \
    || { echo "the wheel lacks the run-time files"; exit 1; }

step "install it into $venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "$whl"                                  # with its dependencies
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$whl"      # this build, not a cached one
export PATH="$venv/bin:$PATH" HF_HUB_OFFLINE=1 TEXTCOLOR_CACHE="$work/cache"
unset PYTHONPATH

mkdir "$work/user" && cd "$work/user"   # outside the checkout: nothing can come from the repository
python - "$repo" <<'EOF'
import sys, textcolor
from pathlib import Path
pkg = Path(textcolor.__file__).resolve().parent
assert not pkg.is_relative_to(Path(sys.argv[1]).resolve()), f"textcolor imported from the checkout: {pkg}"
print(f"textcolor {textcolor.__version__} from {pkg}")
EOF
for cmd in train infer synth sketch prepare evaluate checkpoint realart projector sweep bench app; do
    "textcolor-$cmd" --version
done

step "synth: the bundled characters"
textcolor-synth --out synth --n 6 --size 64
test -f synth/metadata.csv

step "infer with the shipped model"
img=$(ls synth/*.png | grep -v '\.mask\.png$' | head -1)
textcolor-infer --sketch "$img" --from-color --tags "hatsune_miku" --out shipped.png
test -s shipped.png

step "evaluate the shipped model (tiny --n)"
textcolor-evaluate --n 1 --size 64 --json eval.json
test -s eval.json

step "train 4 steps on the synthetic data (the main job's bundled demo config, shrunk)"
textcolor-train --config demo --out run data.size=32 data.synth_n=16 data.val_n=2 data.workers=0 \
    gen.base=8 gen.depth=2 gen.max_ch=16 disc.base=8 tags.k=4 \
    train.steps=4 train.batch_size=2 train.log_every=2 train.image_every=2 train.ckpt_every=2
test -f run/checkpoints/last.pt

step "infer and export with the trained run"
textcolor-infer --sketch "$img" --from-color --tags "red_hair" --checkpoint run --out trained.png
textcolor-checkpoint export run hub --hub --eval eval.json --recipe tiny.yaml
python -c "
from textcolor.colorize import Colorizer
import yaml
Colorizer.from_pretrained('hub', device='cpu')('$img', 'red_hair', from_color=True)
card = open('hub/README.md').read()
assert yaml.safe_load(card.split('---')[1])['library_name'] == 'textcolor'
print('hub directory loads; card front matter parses')"

step "wheel smoke passed"
