from kalepool.cli import main

main()
