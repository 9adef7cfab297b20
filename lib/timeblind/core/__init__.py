"""The ground floor: where files live, one atomic write, statistics and task specs. Imports
nothing of timeblind, so every other part may import it."""
