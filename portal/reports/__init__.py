"""Traffic and money reports: by day, customer, provider, destination."""
