package seed

// Word lists the generator draws names from. They imitate the shapes of the
// real totesys data (faker-style names and addresses), not its values.
var (
	firstNames = []string{
		"Jeremie", "Deron", "Jeanette", "Ana", "Magdalena", "Korey", "Raphael", "Oswaldo", "Brody", "Jazmyn",
		"Meda", "Imani", "Stan", "Rigoberto", "Tom", "Pierre", "Flavio", "Yoshiko", "Felicita", "Irving",
		"Lucy", "Melba", "Jean", "Homer", "Ivan", "Jane", "Myra", "Taylor", "Alfredo", "Micheal",
		"Erika", "Carlo", "Ruby", "Owen", "Priya", "Aisha", "Dmitri", "Sofia", "Kenji", "Freya",
	}
	lastNames = []string{
		"Franey", "Beier", "Erdman", "Glover", "Zieme", "Kovacek", "Hane", "Sanford", "Wiza", "Haag",
		"Cassin", "Toy", "Runolfsdottir", "Mitchell", "Balistreri", "Herzog", "Upton", "Rogahn", "Torphy", "Leuschke",
		"Grady", "Fahey", "Leannon", "Predovic", "Morar", "Armstrong", "Kohler", "Frami", "Yundt", "Macejkovic",
		"Bashirian", "Kuhic", "Schmeler", "Ondricka", "Padberg", "Stiedemann", "Wintheiser", "Zboncak", "Hettinger", "Lesch",
	}
	streetSuffixes = []string{
		"Via", "Cliffs", "Fort", "Skyway", "Track", "Freeway", "Radial", "Turnpike", "Ways", "Glens",
		"Wall", "Pines", "Bridge", "Circles", "Road", "Street", "Lane", "Avenue", "Crescent", "Mews",
	}
	cityPrefixes = []string{"", "", "", "New ", "Lake ", "Fort ", "East ", "West ", "North ", "South ", "Port "}
	citySuffixes = []string{"burgh", "side", "ton", "ville", "furt", "haven", "borough", "mouth", "field", "stad", ""}
	districts    = []string{
		"Avon", "Bedfordshire", "Berkshire", "Borders", "Buckinghamshire", "Cambridgeshire",
		"Cheshire", "Cornwall", "Cumbria", "Derbyshire", "Devon", "Dorset",
	}
	countries = []string{
		"Turkey", "San Marino", "Samoa", "Republic of Korea", "Bosnia and Herzegovina", "Austria", "Cayman Islands",
		"Antigua and Barbuda", "Greece", "Guernsey", "Iceland", "Lithuania", "Liechtenstein", "Mauritius",
		"Peru", "Falkland Islands (Malvinas)", "United Kingdom", "Ireland", "Portugal", "Canada",
		"Chile", "Japan", "Kenya", "Norway", "Vietnam", "Uruguay", "Morocco", "Estonia", "Fiji", "Nepal",
	}
	companyForms = []string{"%s and Sons", "%s Inc", "%s LLC", "%s Group", "%s - %s", "%s, %s and %s", "%s and %s"}
)

// Design vocabulary, shared with the simulator so new designs look like old ones.
var (
	// DesignMaterials are the design names totesys uses.
	DesignMaterials = []string{
		"Wooden", "Bronze", "Concrete", "Cotton", "Fresh", "Frozen", "Granite", "Metal", "Plastic", "Rubber", "Soft", "Steel",
	}
	// DesignDirs are the file locations designs are stored under.
	DesignDirs = []string{
		"/usr", "/private", "/lost+found", "/System", "/usr/ports", "/opt", "/home/user", "/var/log", "/srv",
		"/etc/defaults", "/usr/local/bin", "/Network", "/Library", "/tmp", "/root", "/mnt", "/boot", "/sys",
		"/usr/share", "/var/mail", "/opt/include", "/private/var", "/Users", "/home/user/dir", "/etc/mail",
		"/usr/libexec", "/var/tmp", "/private/tmp", "/usr/sbin", "/net", "/media", "/var/spool", "/etc/ppp",
		"/usr/X11R6", "/opt/lib", "/usr/include", "/dev", "/var/yp", "/etc/namedb", "/Applications",
	}
)

// departments are Terrific Totes' eight departments as totesys has them,
// with the real data's misspelt location of Dispatch ("Leds").
var departments = []struct{ name, location, manager string }{
	{"Sales", "Manchester", "Richard Roma"},
	{"Purchasing", "Manchester", "Naomi Lapaglia"},
	{"Production", "Leeds", "Chester Ming"},
	{"Dispatch", "Leds", "Mark Hanna"},
	{"Finance", "Manchester", "Jordan Belfort"},
	{"Facilities", "Manchester", "Shelley Levene"},
	{"Communications", "Leeds", "Ann Blake"},
	{"HR", "Leeds", "James Link"},
}

// currencies are the codes totesys trades in, in id order.
var currencies = []string{"GBP", "USD", "EUR"}
