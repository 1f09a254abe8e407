"""Fetching and converting the face models (`anju models fetch`): installer-side, not on a door."""
