from anju.main import main

main()
