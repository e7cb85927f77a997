"""Helpers shared by several test modules (tests import from here, never from another test module):
`toy` (a small local task with synthetic features, a method file, a method context), `leaderboard`
(synthetic results, submissions, records and boards)."""
