from bookmix.cli import main

main()
