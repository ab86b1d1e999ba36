from reclaim.cli import main

main()
