"""Feedback: what people tell the page (votes, unanswered questions), and the maintainer's review of it.

The SQLite store the page writes (`store.py`) sits below serving, which records into it;
the review (`review.py`) turns it into a report and example questions for the bank.
"""
