"""Rate versions (sell and cost side): change from an effective date, end, history."""
