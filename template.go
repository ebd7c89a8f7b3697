package dripdrop

// TEMPORARY until package spintax lands.
func ValidateTemplate(field, text string, spin bool) error { return nil }
