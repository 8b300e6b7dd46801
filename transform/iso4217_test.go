package transform

import "testing"

func TestCurrencyNames(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{
		"GBP": "Pound Sterling",
		"USD": "US Dollar",
		"EUR": "Euro",
		"CHF": "Swiss Franc",
		"JPY": "Yen",
		"CNY": "Yuan Renminbi",
		"INR": "Indian Rupee",
		"ZAR": "Rand",
		"AED": "UAE Dirham",
		"XAU": "Gold",
		"ZWG": "Zimbabwe Gold",
	} {
		if got, ok := currencyName(code); !ok || got != want {
			t.Errorf("currencyName(%q) = %q, %v; want %q", code, got, ok, want)
		}
	}
	for _, code := range []string{"ABC", "gbp", "Gbp", "", "GB", "GBPX", " GBP", "XYZ"} {
		if name, ok := currencyName(code); ok {
			t.Errorf("currencyName(%q) = %q, want not a code", code, name)
		}
	}
	if len(currencyNames) < 175 {
		t.Errorf("only %d codes", len(currencyNames))
	}
	for code, name := range currencyNames {
		if len(code) != 3 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' || code[2] < 'A' || code[2] > 'Z' || name == "" {
			t.Errorf("bad entry %q: %q", code, name)
		}
	}
}
