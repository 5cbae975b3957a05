from openkms.cli import main

main()
