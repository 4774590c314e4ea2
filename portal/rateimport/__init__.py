"""Rate deck import (sell side into a ratecard, cost side into a provider) and export."""
