#include <stdio.h>
int main(void) {
    fprintf(stderr, "newsalert-producer: under construction\n");
    return 1;
}
