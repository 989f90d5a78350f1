#!/usr/bin/env python3
"""Write the model card of every pretrained tag of the plugin into hub_cards/<model>.<tag>.md.

    python scripts/generate_cards.py [--out hub_cards] [--check]

``--check`` writes nothing and exits 1 when a card in the folder differs from the code.
"""
import argparse
import os
import sys


def main(argv=None) -> int:
    from timm_attn.cards import plugin_pretrained_tags, render_card
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'hub_cards'))
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    stale = []
    for name_tag in plugin_pretrained_tags():
        path = os.path.join(args.out, f'{name_tag}.md')
        card = render_card(name_tag)
        current = open(path).read() if os.path.exists(path) else None
        if current != card:
            stale.append(path)
            if not args.check:
                os.makedirs(args.out, exist_ok=True)
                with open(path, 'w') as f:
                    f.write(card)
    for path in stale:
        print(('out of date: ' if args.check else 'wrote ') + path)
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
