"""Domain vocabulary every layer shares: region and airport locations, name patterns, reasons."""
