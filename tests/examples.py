"""Shared inputs for the tests."""

from __future__ import annotations

DOG_WALKING = [
    "Dog Walking: 10 Simple Steps",
    "The Secrets of Dog Walking",
    "Why You Need To Dog Walking",
    "The Art of Dog Walking",
    "The Joy of Dog Walking",
]
PUBLIC_SPEAKING = [
    "Public Speaking For The Modern Age",
    "Learn The Art of Public Speaking",
    "Master The Art of Public Speaking",
    "The Best Way To Public Speaking",
]
NINE_TITLES = DOG_WALKING + PUBLIC_SPEAKING
