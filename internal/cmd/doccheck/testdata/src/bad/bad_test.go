package bad

func TestHelper() {}
