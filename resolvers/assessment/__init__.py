"""The annual assessment (绩效考核) of seed 001 Annex 4: its catalogue, the rules that score it, the
figures counted live from the members' sources, the assessors' scores, and the conclusion that
moves the alliance's standing (seed 003)."""
