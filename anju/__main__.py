from anju.cli import main

main()
