"""The demo: a small organisation of Yantai to seed an empty database with (:mod:`.seed`), and a city
simulated for N days through the service layer, like any client (:mod:`.city`)."""
