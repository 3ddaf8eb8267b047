"""The pure domain: task rules, recurrence and reminder specifications. No I/O, no frameworks."""
