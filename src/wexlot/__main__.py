from wexlot.cli import main

main()
