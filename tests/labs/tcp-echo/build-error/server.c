/* Broken on purpose: does not compile. */
int main( { return 0; }
